"""Data sets: the paper's synthetic teacher–student task and real image data."""
from .synthetic import Dataset, teacher_student

__all__ = ["Dataset", "teacher_student"]
