"""``smpsim demo rollback|update``: a board with its dashboard, driven through a scenario by a
small SMP client over UDP, each step narrated in the terminal. :mod:`.scenario` holds the steps,
:mod:`.client` the client, :mod:`.command` the command line."""
