"""The field's metrics, one file per family, each tested on hand-computed cases.

classification.py: top-k, per-class accuracy, confusion, multi-view averaging.
frame_prediction.py: Shi et al.'s BCE per sequence, MSE and SSIM per frame.
localization.py: ActivityNet's detection mAP at temporal IoU thresholds, its results JSON.
segmentation.py: MS-TCN's frame accuracy, edit score and F1@{10,25,50}.
detection.py: COCO box mAP / AR, scored by pycocotools from COCO-format JSON.
tracking.py: HOTA, MOTA and IDF1, scored by trackeval's metric classes from MOT-format rows.
"""
