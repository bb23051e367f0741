"""Tests of phase_diagram."""
