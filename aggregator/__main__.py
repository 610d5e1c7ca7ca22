"""`python -m aggregator`: the same command as `aggregator`.

Guarded, as every main module must be where multiprocessing starts workers
by importing it (the parse pool's forkserver).
"""

from aggregator.app.cli import main

if __name__ == "__main__":
    main()
