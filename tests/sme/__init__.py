"""Tests of meanfield_dropout.sme."""
