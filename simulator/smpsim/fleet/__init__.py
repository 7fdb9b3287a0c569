"""``smpsim fleet``: many boards in one process (or a few), for backends that manage fleets.

Each board is the same one-board composition ``smpsim run`` serves, given its own flash file,
identity and addresses; nothing below ``transports/`` knows it is part of a fleet.

``spec`` reads ``--board PROFILE:N`` and plans the boards, ``identity`` gives each its serial
number and names, ``addressing`` its UDP address, ``manifest`` describes the fleet in JSON,
``shard`` runs boards in one event loop, ``workers`` splits them across processes, ``cli`` is
the command.
"""
