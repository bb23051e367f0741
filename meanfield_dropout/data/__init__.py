"""Data sets: the paper's synthetic teacher–student task, a small toy problem and real image
data, and the registry of the named ones (:mod:`.registry`: ``teacher-student``, ``toy``,
``mnist47``) that every command and function uses."""
from .mnist import ImageDataset, mnist10, mnist47, mnist_task
from .registry import DATASETS, data_label, load_dataset
from .synthetic import Dataset, teacher_student, toy

__all__ = ["DATASETS", "Dataset", "ImageDataset", "data_label", "load_dataset", "mnist10",
           "mnist47", "mnist_task", "teacher_student", "toy"]
