"""Input contracts, readers and validation (file, row, column, why)."""

from hiddenpop.data.io import file_sha256, read_table
from hiddenpop.errors import DataError, ModelError

__all__ = ["DataError", "ModelError", "file_sha256", "read_table"]
