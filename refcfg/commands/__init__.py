"""One module per ``refcfg`` subcommand (discovered by ``refcfg.cli``)."""
