"""Runtime infrastructure shared by every experiment: written once.

* :mod:`.threads` — the thread limits of the kernels (Numba threads by size, BLAS on one);
* :mod:`.runner` — independent runs on a local process pool, one Numba and one BLAS thread each;
* :mod:`.memory` — memory estimates and the guard that refuses a run before it allocates;
* :mod:`.results` — the one result file format (a registered dataclass ↔ one ``.npz``) and the
  atomic file writer.
"""
