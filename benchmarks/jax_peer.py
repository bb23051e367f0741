"""A JAX peer of the engine's ``dropout`` update, compiled whole with ``jit`` + ``lax.scan``.

Written the way a JAX user would: the mean-field network, ``jax.grad`` of the masked loss,
Bernoulli masks from ``jax.random`` and the unmasked train loss recorded every step, the
whole run one compiled ``lax.scan``. Used only by ``benchmarks/bench_step.py`` (the optional
``bench`` extra installs JAX).
"""
from timing import best_seconds


def dropout_run_time(inputs, targets, initial, keep_prob, master_lr, steps, repeats=3):
    """Best seconds per step of a compiled JAX dropout loop (float dtype of ``initial``)."""
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)
    dtype = initial.dtype
    Z = jnp.asarray(inputs, dtype=dtype)
    y = jnp.asarray(targets, dtype=dtype)
    width = initial.shape[0]

    def predictor(X, weight):
        return (weight * X[:, 0]) @ jax.nn.relu(X[:, 1:] @ Z.T) / width

    def masked_loss(X, weight):
        return 0.5 * jnp.mean((predictor(X, weight) - y) ** 2)

    def step(carry, _):
        X, key = carry
        key, sub = jax.random.split(key)
        weight = jax.random.bernoulli(sub, keep_prob, (width,)).astype(dtype) / keep_prob
        loss = masked_loss(X, jnp.ones(width, dtype))
        X = X - (master_lr * width) * jax.grad(masked_loss)(X, weight)
        return (X, key), loss

    @jax.jit
    def run(X, key):
        return jax.lax.scan(step, (X, key), None, length=steps)

    X0 = jnp.asarray(initial)
    key = jax.random.PRNGKey(0)
    # the warm-up call compiles
    return best_seconds(lambda: jax.block_until_ready(run(X0, key)), repeats) / steps
