"""Randomness of the engine, planned outside the kernels and handed in chunk by chunk.

A run's masks and minibatches come either from streams spawned from one seed
(:class:`SeededNoise`) or are given explicitly (:class:`ExplicitNoise`, the public hook for
tests and for coupling a run to randomness planned elsewhere). Both answer
``chunk(start, stop)`` with the boolean dropout masks M (steps, n), the independent forward
masks M' and the minibatch indices (steps, B) of steps ``start`` to ``stop`` − 1.
"""
import numpy as np

from .validation import seed_sequence


def engine_streams(seed):
    """The streams a :func:`~meanfield_dropout.engine.simulate` seed is spawned into: (init,
    minibatch, dropout mask, forward mask) :class:`numpy.random.SeedSequence` s."""
    return tuple(seed_sequence(seed).spawn(4))


def mask_uniforms(seed):
    """The generator of the uniforms U of the dropout masks of ``simulate(seed=seed)``.

    :class:`SeededNoise` keeps neuron i at step k when U_ik < q, drawing the rows U_k (one
    uniform per neuron, step after step) from this stream; successive ``random`` calls on the
    returned generator give the same rows, whatever the chunking (one 64-bit draw per
    uniform), so a run coupled to dropout's masks reads them here.
    """
    return np.random.default_rng(engine_streams(seed)[2])


class ExplicitNoise:
    """Masks and minibatches handed to :func:`simulate` instead of drawing them from a seed.

    The public hook for tests and for coupling a run to randomness planned elsewhere.

    Parameters
    ----------
    masks : array_like of bool, shape (steps, n)
        The dropout mask M of every step (True = kept).
    forward_masks : array_like of bool, shape (steps, n), optional
        The independent forward mask M' of ``pn``/``pn_ram`` (needed only by them).
    batches : array_like of int, shape (steps, B), optional
        Minibatch indices of every step (full batch if omitted).
    """

    def __init__(self, masks, forward_masks=None, batches=None):
        self.masks = np.ascontiguousarray(masks, dtype=np.bool_)
        if self.masks.ndim != 2:
            raise ValueError(f"masks must have shape (steps, width), got {self.masks.shape}")
        steps = self.masks.shape[0]
        self.forward_masks = None if forward_masks is None else \
            np.ascontiguousarray(forward_masks, dtype=np.bool_)
        if self.forward_masks is not None and self.forward_masks.shape != self.masks.shape:
            raise ValueError(f"forward_masks must have the shape of masks {self.masks.shape}, "
                             f"got {self.forward_masks.shape}")
        self.batches = np.empty((steps, 0), dtype=np.int64) if batches is None else \
            np.ascontiguousarray(batches, dtype=np.int64)
        if self.batches.ndim != 2 or self.batches.shape[0] != steps:
            raise ValueError(f"batches must have shape ({steps}, batch_size), got "
                             f"{self.batches.shape}")

    def check(self, steps, width, points, need_forward):
        """Validate against a run of ``steps`` steps of width ``width`` on ``points`` data."""
        if self.masks.shape != (steps, width):
            raise ValueError(f"noise masks must have shape ({steps}, {width}), got "
                             f"{self.masks.shape}")
        if need_forward and self.forward_masks is None:
            raise ValueError("noise needs forward_masks for the pn and pn_ram variants")
        if self.batches.size and (self.batches.min() < 0 or self.batches.max() >= points):
            raise ValueError(f"noise batches must be indices in [0, {points - 1}]")
        return self.batches.shape[1] or points

    def chunk(self, start, stop):
        """(masks, forward masks, batches) of steps ``start`` to ``stop`` − 1."""
        forward = self.masks[start:stop, :0] if self.forward_masks is None else \
            self.forward_masks[start:stop]
        return self.masks[start:stop], forward, self.batches[start:stop]


class SeededNoise:
    """Masks and minibatches drawn chunk by chunk from streams spawned from a seed.

    Parameters
    ----------
    mask_seq, forward_seq, batch_seq : numpy.random.SeedSequence
        Streams of the dropout mask M, the forward mask M' and the minibatches.
    width, keep_prob, points, batch_size : int, float, int, int
        n, q, m and B.
    need_forward : bool
        Whether M' is drawn at all.
    """

    def __init__(self, mask_seq, forward_seq, batch_seq, *, width, keep_prob, points,
                 batch_size, need_forward):
        self._mask_rng = np.random.default_rng(mask_seq)
        self._forward_rng = np.random.default_rng(forward_seq)
        self._batch_rng = np.random.default_rng(batch_seq)
        self.width, self.keep_prob = width, keep_prob
        self.points, self.batch_size, self.need_forward = points, batch_size, need_forward

    def chunk(self, start, stop):
        """(masks, forward masks, batches) of the next ``stop − start`` steps."""
        count = stop - start
        masks = self._mask_rng.random((count, self.width)) < self.keep_prob
        forward = (self._forward_rng.random((count, self.width)) < self.keep_prob) \
            if self.need_forward else masks[:0]
        # no columns: the full batch
        size = self.batch_size if self.batch_size < self.points else 0
        batches = np.empty((count, size), dtype=np.int64)
        for row in batches if size else ():
            row[:] = self._batch_rng.choice(self.points, self.batch_size, replace=False)
        return masks, forward, batches
