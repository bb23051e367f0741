"""Data sets: the paper's synthetic teacher–student task and real image data."""
from .mnist import ImageDataset, mnist10, mnist47, mnist_task
from .synthetic import Dataset, teacher_student

__all__ = ["Dataset", "ImageDataset", "mnist10", "mnist47", "mnist_task", "teacher_student"]
