"""Which limit describes dropout at a finite width: measurement, not theory.

* :mod:`.decision` — stated rules that name a limit from measured distances, or say why not;
* :mod:`.plugin` — a network's plug-in limit constants, their cost and one measured cell;
* :mod:`.locate` — :func:`~phase_diagram.finder.locate.locate` for one concrete network;
* :mod:`.phase_map` — finite-width phase maps over the simplex.
"""
