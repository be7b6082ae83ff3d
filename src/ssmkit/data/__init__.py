"""Tasks and datasets: loaders for files on disk and seeded generators."""
