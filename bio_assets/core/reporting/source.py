"""The source's published numbers the report compares against (METHOD §3-7)."""

from __future__ import annotations

# Table 2.8/2.9: the searched CNN (5-[1]) on the 4-class cytology set, and the best classic CNN.
SEARCHED_CNN_ACCURACY = 0.99125
BEST_CLASSIC_CNN_ACCURACY = 0.93
# METHOD §7: the searched CNN retrained on 800 real + 16 000 synthetic images.
EXTENDED_ACCURACY = 0.996
# Table 1.7: IS / FID of one synthetic set through each extractor, and the time each took.
EXTRACTOR_SCORES: dict[str, dict[str, float | str]] = {
    "inception_v3": {"is": 3.22, "fid": 10.03, "time": "~2 min"},
    "biocnn1": {"is": 3.52, "fid": 7.41, "time": "~8 s"},
    "biocnn2": {"is": 3.71, "fid": 2.34, "time": "~15 s"},
}
# The searched GA-GAN's own Inception FID after 100 000 iterations (the GAN comparison table).
SEARCHED_GAN_FID = 3.39
# Table 4.5: colour-histogram KL divergence, 150 real vs 150 synthetic images per class.
CLASS_KL: dict[str, float] = {
    "cyt_nep_mast": 0.0032,
    "cyt_nep_fib_mast": 0.0041,
    "cyt_mast": 0.0047,
    "cyt_kist_mast": 0.0095,
}
KL_IMAGES_PER_SIDE = 150
