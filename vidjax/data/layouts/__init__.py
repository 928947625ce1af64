"""One module per published dataset layout; the registry names each one's reader.

Each loader lists the files of its layout and returns the same
`common.VideoDataset`, so nothing downstream knows which layout it read.
"""
