"""study_util.py: what the sample-count studies (adaptive_study.py, alpha_study.py) share."""
import os

import numpy as np


def unit(a):
    """a scaled to unit L2 norm (a itself when it is all zeros)."""
    n = np.linalg.norm(a)
    return a / n if n > 0 else a


def first_files(folder, limit, work):
    """folder itself when limit <= 0, else a folder under work holding links to the first
    `limit` files of folder (sorted by name)."""
    if limit <= 0:
        return folder
    sub = os.path.join(work, "inputs")
    os.makedirs(sub, exist_ok=True)
    for f in sorted(os.listdir(folder))[:limit]:
        dst = os.path.join(sub, f)
        if not os.path.lexists(dst):
            os.symlink(os.path.abspath(os.path.join(folder, f)), dst)
    return sub
