"""HPC clusters through ``dask-jobqueue`` (the optional ``jobqueue`` extra) for scans, maps
and grids.

A scan, a phase map or a grid runs on any ``dask.distributed`` scheduler (``--dask ADDRESS``,
through :func:`meanfield_dropout.runtime.runner.run_unordered`). On a
batch system, :class:`JobqueueConfig` describes the jobs that host the Dask workers; with
``--jobqueue FILE.toml`` the command starts the cluster, submits ``jobs`` batch jobs, runs its
cells on them and stops the cluster at the end. Example (``examples/jobqueue_slurm.toml``)::

    system = "slurm"          # slurm, pbs, sge, lsf, htcondor, moab or oar
    jobs = 10                 # batch jobs; each runs `processes` single-threaded workers
    cores = 10
    processes = 10
    memory = "20GB"
    walltime = "02:00:00"
    queue = "compute"
    account = "my-project"
    job_script_prologue = ["source /path/to/venv/bin/activate"]

Every worker runs one cell at a time on one thread (``cores == processes``; Numba and BLAS
threads are pinned to 1 in the job script). Cells are keyed and seeded by their identity, so
the numbers are those of the local process pool, and a killed run resumes from the cell
files (the output directory must be on a file system the jobs share, or the records are
written by the submitting process as they arrive).
"""
import dataclasses
import re
import tomllib

from meanfield_dropout.validation import check_choice, check_data_file, check_int

__all__ = ["JobqueueConfig", "SYSTEMS", "load_jobqueue_config"]

#: Batch systems and their dask-jobqueue cluster classes.
SYSTEMS = {"slurm": "SLURMCluster", "pbs": "PBSCluster", "sge": "SGECluster",
           "lsf": "LSFCluster", "htcondor": "HTCondorCluster", "moab": "MoabCluster",
           "oar": "OARCluster"}
_THREAD_PINS = ("export NUMBA_NUM_THREADS=1", "export OMP_NUM_THREADS=1",
                "export OPENBLAS_NUM_THREADS=1", "export MKL_NUM_THREADS=1")


_MEMORY = re.compile(r"([0-9]+(?:\.[0-9]+)?)\s*([KMGTP]i?B|[KMGTP])", re.IGNORECASE)
_WALLTIME = re.compile(r"([0-9]{1,4}):([0-9]{2}):([0-9]{2})")


def _check_text(value, name):
    """A non-empty string of one line: printable characters only (no newline, line separator
    or other control character), so that it cannot add a line to the job script."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name} must be a non-empty string, got {value!r}")
    if not value.isprintable():
        raise ValueError(f"{name} must be one line without control characters (a newline "
                         f"would add a line to the job script), got {value!r}")
    return value


@dataclasses.dataclass(frozen=True)
class JobqueueConfig:
    """The batch jobs that host Dask workers for a scan or a phase map.

    Every field is checked when the configuration is made (a ``ValueError`` naming it): the
    strings are single lines of printable characters, so none can add a line to the job
    script.

    Attributes
    ----------
    system : str
        A key of :data:`SYSTEMS`.
    jobs : int
        Batch jobs to submit (workers = jobs × processes).
    cores, processes : int
        Cores per job and worker processes per job (equal: one thread per worker).
    memory : str
        Memory per job: a number and a unit, e.g. ``"20GB"``, ``"500MB"``, ``"2GiB"``.
    walltime : str
        ``"HH:MM:SS"`` (minutes and seconds below 60).
    queue, account : str or None
    job_extra_directives : tuple of str
        Extra scheduler lines (e.g. ``"--constraint=cpu"``).
    job_script_prologue : tuple of str
        Shell lines run before the worker starts (activate the environment here).
    local_directory : str or None
        Scratch directory of the workers.
    """

    system: str = "slurm"
    jobs: int = 1
    cores: int = 1
    processes: int = 1
    memory: str = "2GB"
    walltime: str = "01:00:00"
    queue: str | None = None
    account: str | None = None
    job_extra_directives: tuple = ()
    job_script_prologue: tuple = ()
    local_directory: str | None = None

    def __post_init__(self):
        check_choice(self.system, "system", tuple(SYSTEMS))
        check_int(self.jobs, "jobs", low=1, high=10000)
        check_int(self.cores, "cores", low=1, high=1024)
        check_int(self.processes, "processes", low=1, high=1024)
        if self.processes != self.cores:
            raise ValueError(f"processes must equal cores (one single-threaded worker per "
                             f"core), got cores={self.cores}, processes={self.processes}")
        memory = _check_text(self.memory, "memory")
        size = _MEMORY.fullmatch(memory)
        if not size or not float(size[1]) > 0:
            raise ValueError(f"memory must be a size above 0 such as '4GB', '500MB' or '2GiB', "
                             f"got {memory!r}")
        walltime = _check_text(self.walltime, "walltime")
        match = _WALLTIME.fullmatch(walltime)
        hours, minutes, seconds = (int(part) for part in match.groups()) if match else (0,) * 3
        if not match or minutes > 59 or seconds > 59 or hours + minutes + seconds == 0:
            raise ValueError(f"walltime must be HH:MM:SS (minutes and seconds < 60, not "
                             f"zero), got {walltime!r}")
        for name in ("queue", "account", "local_directory"):
            if getattr(self, name) is not None:
                _check_text(getattr(self, name), name)
        for name in ("job_extra_directives", "job_script_prologue"):
            value = getattr(self, name)
            if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
                raise ValueError(f"{name} must be a list of strings, got {value!r}")
            object.__setattr__(self, name, tuple(_check_text(v, f"{name} entry")
                                                 for v in value))

    @property
    def workers(self):
        """Dask workers once every job runs."""
        return self.jobs * self.processes

    def cluster_kwargs(self):
        """Keyword arguments of the dask-jobqueue cluster class (``dask_jobqueue.<SYSTEMS>``)."""
        kwargs = dict(cores=self.cores, processes=self.processes, memory=self.memory,
                      walltime=self.walltime,
                      job_script_prologue=list(_THREAD_PINS + self.job_script_prologue),
                      job_extra_directives=list(self.job_extra_directives))
        for name in ("queue", "account", "local_directory"):
            if getattr(self, name) is not None:
                kwargs[name] = getattr(self, name)
        return kwargs

    def make_cluster(self):
        """The dask-jobqueue cluster (not scaled yet; :meth:`start` submits the jobs)."""
        try:
            import dask_jobqueue
        except ImportError:
            raise RuntimeError("--jobqueue needs dask-jobqueue: pip install -e .[jobqueue]") \
                from None
        return getattr(dask_jobqueue, SYSTEMS[self.system])(**self.cluster_kwargs())

    def start(self):
        """Start the cluster and submit :attr:`jobs` jobs; returns the cluster (close it
        when done; its ``scheduler_address`` is what ``--dask`` takes)."""
        cluster = self.make_cluster()
        cluster.scale(jobs=self.jobs)
        return cluster


def load_jobqueue_config(path):
    """A :class:`JobqueueConfig` from a TOML file (one-line ValueError if malformed)."""
    path = check_data_file(path, "jobqueue configuration", max_bytes=1 << 20)
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except OSError as exc:
        raise ValueError(f"cannot read jobqueue configuration {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ValueError(f"jobqueue configuration {path} is not a UTF-8 text (TOML) file") \
            from None
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"malformed TOML in {path}: {exc}") from None
    fields = {f.name for f in dataclasses.fields(JobqueueConfig)}
    unknown = sorted(set(data) - fields)
    if unknown:
        raise ValueError(f"unknown key(s) {unknown} in {path}; allowed: {sorted(fields)}")
    return JobqueueConfig(**data)
