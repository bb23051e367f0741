"""The kernel layer: every ``@njit`` function of the network, and nothing else.

Kernels take plain arrays and small ``NamedTuple`` structs, check nothing, allocate as little
as they can and do no I/O; the public functions of :mod:`meanfield_dropout` validate their
arguments once, plan the randomness and call them.

* :mod:`.structs` — the structs the kernels take (the network's data, a pass's rows, what a
  forward pass keeps, a step's constants);
* :mod:`.activations` — σ, σ′, σ″ by integer code;
* :mod:`.core` — the two-layer network, its loss and its gradient, written once;
* :mod:`.blocks`, :mod:`.relu_signs` — blocked forward/backward passes and the ReLU sign path;
* :mod:`.variants` — the engine's update rules as one chunk kernel;
* :mod:`.rows` — one-neuron kernels of the jump limits;
* :mod:`.limit_steps` — the flow (Heun) and jump-event kernels of the limit dynamics;
* :mod:`.second_order` — Jacobian-transpose and Hessian–vector products;
* :mod:`.sme_model`, :mod:`.sme_noise`, :mod:`.sme_steps` — the SME network at fixed width
  (dropout gradients, L_S, H v), its gradient noise Σ and its runs (dropout, GD on L_S,
  Euler–Maruyama SME steps);
* :mod:`.twins` — the serial twins of the kernels that run parallel regions, for small runs;
* :mod:`.cache` — the cache key of every kernel: the source of the whole layer.
"""
# before any kernel module is imported: the locators that key the kernels' cache entries
from . import cache  # noqa: F401
