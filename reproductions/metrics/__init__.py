"""Metrics, each from established code where it exists: torchmetrics FID/KID on the standard FID
Inception weights, scikit-image PSNR/SSIM, MONAI Dice/Hausdorff, scikit-learn classification and
clustering scores, pycocoevalcap BLEU/METEOR/ROUGE-L/CIDEr and bert-score on MiniLM."""
