"""Outputs: the AIPerf-style console table, the JSON run report, the HTML report."""
