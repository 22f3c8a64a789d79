"""The discrete-event core: an event queue on an integer-nanosecond clock, and the replay driver."""
