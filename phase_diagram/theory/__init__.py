"""The theory of the phase diagram, exact where SymPy decides: scaling → limit constants → phase.

* :mod:`.expressions` — safe expressions in the width n;
* :mod:`.power_logs` — power-log sequences c·n^p·(log n)^l;
* :mod:`.asymptotics`, :mod:`.numeric` — limits n → ∞, exact (SymPy) or numeric with a flag;
* :mod:`.budgets` — deterministic work budgets for computations that may not finish;
* :mod:`.constants` — the limit constants α, β and the simplex point of a scaling;
* :mod:`.scalings` — scalings n ↦ (τ_n, q_n);
* :mod:`.phases` — the phase of a scaling.
"""
