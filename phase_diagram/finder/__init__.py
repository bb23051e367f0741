"""Which limit describes dropout at a finite width: measurement, not theory.

* :mod:`.decision` — the stated asymptotic rule that names a limit from measured distances
  over widths, or says why not;
* :mod:`.comparison` — the single-width rule: the nearest limit and the one that describes;
* :mod:`.plugin` — a network's plug-in limit constants, their cost and one measured cell;
* :mod:`.locate` — :func:`~phase_diagram.finder.locate.locate` for one concrete network;
* :mod:`.phase_map` — finite-width phase maps over the simplex.
"""
