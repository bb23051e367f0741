"""Experiment settings: frozen dataclasses with the papers' (``full``) and ``quick`` presets."""
import dataclasses

from ..validation import check_int, check_real, new_spellings


@dataclasses.dataclass(frozen=True)
class Settings:
    """Base of every experiment's settings.

    A subclass is a frozen dataclass whose defaults are the papers' settings and whose class
    attribute ``QUICK`` lists the changes of the one-minute version; it validates and
    normalises its fields in ``__post_init__`` (the experiment's one entry-point check).
    """

    QUICK = {}

    @classmethod
    def full(cls):
        """The papers' settings."""
        return cls()

    @classmethod
    def paper(cls):
        """The papers' full-length settings where the default is shortened (else ``full()``)."""
        return cls.full()

    @classmethod
    def quick(cls):
        """Small settings that finish in about a minute."""
        return cls(**cls.QUICK)

    def replace(self, **changes):
        """A copy with some fields changed (ValueError naming an unknown field; a renamed
        field's old name warns, :func:`~meanfield_dropout.validation.renamed_keywords`)."""
        changes = new_spellings(changes, getattr(type(self).__init__, "renamed", {}), 3)
        names = [f.name for f in dataclasses.fields(self)]
        for key in changes:
            if key not in names:
                raise ValueError(f"{type(self).__name__} has no setting {key!r}; settings: "
                                 f"{', '.join(names)}")
        return dataclasses.replace(self, **changes)

    def with_seed(self, seed):
        """A copy with root seed ``seed``."""
        return self.replace(seed=seed)

    def _set(self, **values):
        """Store normalised field values (from ``__post_init__`` of the frozen dataclass)."""
        for name, value in values.items():
            object.__setattr__(self, name, value)


def int_tuple(values, name, low=1):
    """``values`` as a non-empty tuple of ints ≥ ``low`` (ValueError naming ``name``)."""
    return _non_empty(tuple(check_int(v, f"{name} entry", low=low) for v in values), name)


def real_tuple(values, name):
    """``values`` as a non-empty tuple of finite floats (ValueError naming ``name``)."""
    return _non_empty(tuple(check_real(v, f"{name} entry") for v in values), name)


def _non_empty(values, name):
    if not values:
        raise ValueError(f"{name} must not be empty")
    return values


#: The image experiments' update rules: every variant but ``penalized``, GD first.
IMAGE_VARIANTS = ("gd", "dropout", "ram", "pn", "pn_ram")


@dataclasses.dataclass(frozen=True)
class ImageNetworkSettings(Settings):
    """The network and optimiser of the image experiments (digits and MNIST), the authors':
    keep probabilities q, width n, master learning rate τ and SGD batch size B."""

    keep_probs: tuple = (0.6, 0.7, 0.8, 0.9)
    width: int = 4000
    master_lr: float = 0.25
    batch_size: int = 64
