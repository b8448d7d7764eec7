"""`python -m trustprov`: the same command as the `trustprov` script.

The import sits under the ``__main__`` guard: a station's worker process, started with "spawn",
imports this module as ``__mp_main__`` and must not load the command line (start-up, issue 12).
"""

if __name__ == "__main__":
    from trustprov.cli.main import main

    main()
