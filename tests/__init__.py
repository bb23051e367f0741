"""Tests of meanfield_dropout and phase_diagram, laid out like the packages."""
