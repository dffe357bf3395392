"""Implements `ports.experiments.ExperimentData` on the service's database
(`SqlExperimentData`: what the operator endpoint reads, current to the minute) and on the
parquet exports (`ParquetExperimentData`: what the CLI and the nightly run read, at scale).
Both hand arrow tables to the same columnar summing (`columns.variant_days`)."""

from adapters.experiment_data.parquet import ParquetExperimentData
from adapters.experiment_data.sql import SqlExperimentData

__all__ = ["ParquetExperimentData", "SqlExperimentData"]
