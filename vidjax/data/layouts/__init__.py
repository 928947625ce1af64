"""One module per published dataset layout; `datasets.load_dataset` picks one.

Each loader lists the files of its layout and returns the same
`common.VideoDataset`, so nothing downstream knows which layout it read.
"""
