"""follow_one_person: which face of each frame of a clip is the one person fitted (boxes only, no detector)."""
from __future__ import annotations

import numpy as np

from fitter.observe import follow_one_person
from fitter.observe.follow import continues, link_tracks


def box(cx: float, cy: float, size: float) -> np.ndarray:
    return np.array([cx - size / 2, cy - size / 2, cx + size / 2, cy + size / 2], np.float32)


class TestFollowOnePerson:
    def test_sizes_crossing_do_not_switch_person(self):
        # A steady at 100 px on the left; B on the right breathing 80-120 px: the largest face switches 4 times
        frames = [[box(150, 150, 100), box(500, 150, 100 + 20 * np.sin(t / 2))] for t in range(20)]
        largest = [int(np.argmax([b[2] - b[0] for b in f])) for f in frames]
        assert len(set(largest)) == 2  # the test's premise: each frame's largest face is not one person
        following = follow_one_person(frames)
        followed = {round(float(frames[t][k][0] + frames[t][k][2]) / 2) for t, k in enumerate(following.chosen)}
        assert len(followed) == 1  # one person throughout
        assert following.others == list(range(20))
        assert following.first[0] == 0

    def test_the_person_seen_most_is_followed_not_a_passer_by(self):
        # the speaker (80 px) in every frame; someone larger (150 px) walks through frames 5-8
        frames = [[box(300, 200, 80)] + ([box(100 + 40 * t, 200, 150)] if 5 <= t <= 8 else []) for t in range(30)]
        frames[6] = frames[6][::-1]  # detector order carries no meaning
        following = follow_one_person(frames)
        centres = [float(frames[t][k][0] + frames[t][k][2]) / 2 for t, k in enumerate(following.chosen)]
        assert np.allclose(centres, 300)
        assert following.others == [5, 6, 7, 8]

    def test_the_same_person_after_a_cut_is_still_followed(self):
        # a shot of A on the left, a cut, then A on the right (no frame shows both): one person, both shots
        frames = [[box(150, 150, 100)] for _ in range(10)] + [[box(500, 150, 140)] for _ in range(10)]
        following = follow_one_person(frames)
        assert following.chosen == [0] * 20 and following.others == []

    def test_frames_where_only_someone_else_is_seen_count_as_no_face(self):
        # A and B both visible, then A turns away (undetected) for 5 frames while B stays
        frames = [[box(150, 150, 120), box(500, 150, 90)] for _ in range(20)]
        for t in range(8, 13):
            frames[t] = [box(500, 150, 90)]
        following = follow_one_person(frames)
        assert [following.chosen[t] for t in range(8, 13)] == [None] * 5
        assert all(float(frames[t][k][0]) < 300 for t, k in enumerate(following.chosen) if k is not None)

    def test_two_people_who_cross_keep_their_tracks(self):
        # A (120 px, in front) walks right 20 px a frame, B (100 px) walks left; A hides B in frames 9-11. Where B
        # is seen again, A's face lies where B was last seen: a face continuing the track nearest its last box
        # was A's face taking B's track (one identity fitted to two people)
        frames = []
        for t in range(20):
            a, b = box(100 + 20 * t, 150, 120), box(500 - 20 * t, 150, 100)
            frames.append([a] if 9 <= t <= 11 else [b, a])
        tracks = link_tracks(frames)
        assert len(tracks) == 2
        for track in tracks:  # each track one person: A moves right, B left
            xs = [float(frames[t][i][0] + frames[t][i][2]) / 2 for t, i in track]
            assert np.all(np.diff(xs) > 0) or np.all(np.diff(xs) < 0), xs
        following = follow_one_person(frames)
        assert all(float(frames[t][k][2] - frames[t][k][0]) == 120 for t, k in enumerate(following.chosen))

    def test_one_face_per_frame_is_the_largest_rule(self):
        frames = [[box(100 + 3 * t, 120, 90)] for t in range(6)] + [[]] + [[box(400, 300, 60)]]
        following = follow_one_person(frames)
        assert following.chosen == [0] * 6 + [None, 0] and following.others == []

    def test_no_faces(self):
        following = follow_one_person([[], []])
        assert following.chosen == [None, None] and following.first is None


class TestTracks:
    def test_a_face_continues_a_track_near_it_at_a_similar_size(self):
        assert continues(box(100, 100, 100), box(130, 100, 110)) is not None
        assert continues(box(100, 100, 100), box(180, 100, 100)) is None  # too far
        assert continues(box(100, 100, 100), box(100, 100, 200)) is None  # too different in size

    def test_a_track_is_continued_where_its_face_would_be_by_now(self):
        # 30 px a frame (0.3 face sizes), then 3 frames unseen: 120 px from where it was last seen, on its way
        frames = [[box(100 + 30 * t, 100, 100)] for t in range(5)] + [[], [], []] + [[box(100 + 30 * 8, 100, 100)]]
        assert len(link_tracks(frames)) == 1

    def test_gaps_up_to_max_gap_are_bridged(self):
        frames = [[box(100, 100, 80)], [], [], [box(105, 100, 80)]]
        assert len(link_tracks(frames, max_gap=3)) == 1
        assert len(link_tracks(frames, max_gap=2)) == 2
