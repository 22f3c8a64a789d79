from llmreplay.cli.app import main

main()
