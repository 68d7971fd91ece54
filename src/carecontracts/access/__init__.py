"""Who may see and do what: the parties to each contract, the users acting for them, and
the lines each user may see. Shared by the command line and the service."""
