"""The `aggregator` subcommands, one module per kind of work.

    run.py      run (the daemon, or --once), ingest, publish, retag (they write), serve
    read.py     articles, explain, topics: what is stored; they never write
    sources.py  sources: list, add, remove, import and export OPML
    setup.py    init, check, recover: before the first run and after an accident
"""
