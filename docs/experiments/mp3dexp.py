"""Does MediaPipe's landmark depth say anything about the identity? (docs/benchmark.md, "Where the wild error
lives"). Wild seed 0: each detected face's 3D landmarks, un-projected with the true focal length, are matched
by a similarity and a ridge solve for the identity coefficients (expression held at the truth, at zero, or at
MediaPipe's blendshape guess), against the same solve on the true 3D landmark points and on the 2D points alone
(the residual across the viewing axis only).
usage: mp3dexp.py [N]"""
import sys
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
from photexp import MODEL, np, prepare_synthetic
from fitter.energy.landmarks import landmark_embedding
from fitter.energy.pose_guidance import similarity_rotation, unprojected_landmarks
from fitter.optimize.init import expression_from_blendshapes
from fitter.synth.cases import sample_case

EMB = landmark_embedding(MODEL, 'mediapipe478')
CORNERS = MODEL.topology.triangles[EMB.triangles]
BARY = EMB.barycentrics.astype(np.float64)


def at_landmarks(x):
    """(..., V, 3) -> (..., N, 3) at the embedded surface points."""
    return np.einsum('...nci,nc->...ni', x[..., CORNERS, :], BARY)


MU = at_landmarks(MODEL.mean.numpy().astype(np.float64))
B_ID = at_landmarks(MODEL.identity_basis.numpy().astype(np.float64).reshape(len(MODEL.identity_basis), -1, 3))  # (K, N, 3)
B_EX = at_landmarks(MODEL.expression_basis.numpy().astype(np.float64).reshape(len(MODEL.expression_basis), -1, 3))


def similarity(src, dst, w):
    """s, R, c of dst ~ s R src + c (weighted)."""
    R = similarity_rotation(src, dst, w)
    wn = w / w.sum()
    ms, md = (wn[:, None] * src).sum(0), (wn[:, None] * dst).sum(0)
    a, b = src - ms, dst - md
    s = float((wn[:, None] * b * (a @ R.T)).sum() / (wn[:, None] * a * a).sum())
    return s, R, md - s * (R @ ms)


def solve_identity(target, w, beta, sigma, dims=3, iters=8):
    """Identity coefficients (K,) matching the model's landmark points to ``target`` (N, 3) up to a
    similarity, with prior N(0, 1) and point noise ``sigma`` (cm); ``dims`` = 2 uses only x and y after
    the alignment."""
    K = B_ID.shape[0]
    alpha = np.zeros(K)
    base = MU + np.einsum('k,kni->ni', beta, B_EX)
    for _ in range(iters):
        shape = base + np.einsum('k,kni->ni', alpha, B_ID)
        s, R, c = similarity(shape, target, w)
        # in the model frame, the target's points: R^T (t - c) / s; the depth axis is the camera's z -> model R^T e_z
        back = ((target - c) @ R) / s
        resid = back - base
        if dims == 2:  # project onto the plane perpendicular to the camera's viewing axis (model frame)
            view = R[2]  # camera z in model coordinates
            P = np.eye(3) - np.outer(view, view)
            A = np.einsum('kni,ij->knj', B_ID, P)
            r = resid @ P
        else:
            A, r = B_ID, resid
        Aw = (A * np.sqrt(w)[None, :, None]).reshape(K, -1)
        rw = (r * np.sqrt(w)[:, None]).reshape(-1)
        alpha = np.linalg.solve(Aw @ Aw.T + sigma ** 2 * np.eye(K), Aw @ rw)
    return alpha


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 50
    recs = prepare_synthetic(n, 0, 'wild')
    rows = {}
    truths = []
    for r in recs:
        case = sample_case(MODEL, int(r['name'][4:]), 0, 512, appearance='wild')
        truths.append(case.identity.astype(np.float64))
        h, w = r['size'][1], r['size'][0]
        K = np.array([[case.focal, 0, w / 2], [0, case.focal, h / 2], [0, 0, 1.0]])
        face = r['face']
        wt = np.asarray(face.landmark_weights, np.float64)
        true3d = at_landmarks(np.asarray(r['truth'], np.float64))
        mp3d = unprojected_landmarks(face, K)
        guess = expression_from_blendshapes(face.blendshapes or {}, list(MODEL.expression_names)).astype(np.float64)
        zero = np.zeros_like(case.expression, dtype=np.float64)
        te = case.expression.astype(np.float64)
        for sigma in (0.05, 0.15, 0.3):
            for ex_name, beta in (('true expr', te), ('blendshape expr', guess), ('zero expr', zero)):
                for src, tgt, dims in (('true 3D', true3d, 3), ('MediaPipe 3D', mp3d, 3), ('MediaPipe 2D', mp3d, 2)):
                    if ex_name != 'true expr' and src == 'true 3D':
                        continue
                    rows.setdefault((sigma, ex_name, src), []).append(solve_identity(tgt, wt, beta, sigma, dims))
    T = np.array(truths)
    print(f'{len(recs)} faces; per mode 0..7: correlation of the solved coefficient with the truth; '
          f'RMS error of modes 0-4 (truth RMS {np.sqrt((T[:, :5] ** 2).mean()):.2f})')
    for key, al in rows.items():
        A = np.array(al)
        corr = [np.corrcoef(A[:, k], T[:, k])[0, 1] for k in range(8)]
        err = np.sqrt(((A[:, :5] - T[:, :5]) ** 2).mean())
        print(f'sigma {key[0]:.2f} {key[1]:16s} {key[2]:13s} corr ' + ' '.join(f'{c:+.2f}' for c in corr)
              + f' | rms 0-4 {err:.2f}')


if __name__ == '__main__':
    main()
