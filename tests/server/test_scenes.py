"""Scene collections, screen-text scene indexes and scene search through the official SDK, against
the real server in this process (issue 20). The video is a deck of screens made in the test (Pillow,
H.264 at a capture-like bitrate), uploaded once per module."""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import av
import pytest
import requests
import videodb
from support.in_process import InProcessServer
from support.media import make_audio, play
from support.screens import record, slide, terminal


#: One slide a topic: title | bullets | a paraphrase (the words shown are never said: the video is silent).
TOPICS = [(title, bullets.split("; "), paraphrase) for title, bullets, paraphrase in (
    line.split(" | ") for line in """\
Invoice 4471 overdue for Acme | Payment reminder sent twice; Finance escalation pending | unpaid bill from a customer
Kubernetes cluster upgrade plan | Drain nodes before rollout; Rollback within ten minutes | updating container orchestration
Quarterly hiring forecast | Two backend engineers; One product designer | recruiting new staff
Datacenter power outage postmortem | Generator failed to start; Batteries lasted eight minutes | electricity failure incident review
Customer onboarding checklist | Verify email address; Schedule welcome call | welcoming a new customer
Marketing budget allocation | Search ads forty percent; Conferences twenty percent | how advertising money is split""".splitlines())]
SECONDS = 3.0
#: The suite's server settings (tests/conftest.py), the SDK's answers waited for up to 10 s.
SETTINGS = {"sync_wait": "10"}


@pytest.fixture(scope="module")
def deck(tmp_path_factory) -> Path:
    size = (1280, 720)
    shows = [(SECONDS, slide(size, title, bullets)) for title, bullets, _ in TOPICS]
    shows.append((SECONDS, terminal(size, ["$ kubectl logs gateway", "error: certificate expired for api.example.com"],
                                    per_line=0.3)))
    path = tmp_path_factory.mktemp("scenes") / "deck.mp4"
    record(path, shows, size)
    return path


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    server = InProcessServer(tmp_path_factory.mktemp("scene-server") / "data", env=SETTINGS).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def video(srv, deck):
    conn = videodb.connect(api_key=srv.api_key, base_url=srv.url)
    return conn.get_collection().upload(file_path=str(deck))


@pytest.fixture(scope="module")
def index_id(video) -> str:
    return video.index_scenes(prompt="describe the slide", model_name="pro")


def test_extract_scenes_cuts_per_slide_and_serves_its_frames(video):
    coll = video.extract_scenes()
    starts = [s.start for s in coll.scenes]
    assert len(starts) == len(TOPICS) + 1
    for got, want in zip(starts, [i * SECONDS for i in range(len(TOPICS) + 1)]):
        assert abs(got - want) <= 1.0, starts
    frame = coll.scenes[1].frames[0]
    assert coll.scenes[1].start <= frame.frame_time < coll.scenes[1].end
    image = requests.get(frame.url, timeout=30)
    assert image.status_code == 200 and image.headers["content-type"] == "image/jpeg" and image.content[:2] == b"\xff\xd8"
    assert requests.get(frame.url.replace("/frames/", "/frames/x"), timeout=30).status_code == 404
    assert "Kubernetes cluster upgrade plan" in frame.describe()
    assert "Invoice 4471" in coll.scenes[0].describe()

    assert video.get_scene_collection(coll.id).scenes[0].description.startswith("Invoice 4471")
    assert coll.id in [c["scene_collection_id"] for c in video.list_scene_collection()]
    timed = video.extract_scenes(extraction_type="time", extraction_config={"time": 6, "frame_count": 2})
    assert [len(s.frames) for s in timed.scenes][:3] == [2, 2, 2] and timed.scenes[1].start == 6
    video.delete_scene_collection(coll.id)
    timed.delete()
    assert video.list_scene_collection() == []
    with pytest.raises(videodb.exceptions.InvalidRequestError):
        video.get_scene_collection(coll.id)


def test_index_scenes_records_the_text_on_screen(video, index_id):
    (listed,) = [i for i in video.list_scene_index() if i["scene_index_id"] == index_id]
    assert listed["source"] == "screen_text" and listed["prompt"] == "describe the slide"
    assert "no vision model" in listed["note"]
    records = video.get_scene_index(index_id)
    assert len(records) == len(TOPICS) + 1
    for record_, (title, bullets, _) in zip(records, TOPICS):
        assert record_["description"].splitlines()[:3] == [title, *bullets]
    assert "certificate expired" in records[-1]["description"]
    assert video.get_scenes() == records


@pytest.mark.parametrize("search_type", ["keyword", "semantic"])
def test_scene_search_ranks_the_right_scene_first(video, index_id, search_type):
    """Words shown on screen and never said; for semantic search (hybrid, the server's default
    ranking) paraphrases too."""
    queries = [(i, bullets[0]) for i, (_, bullets, _) in enumerate(TOPICS)]
    if search_type == "semantic":
        queries += [(i, paraphrase) for i, (_, _, paraphrase) in enumerate(TOPICS)]
    wrong = []
    for i, query in queries:
        try:
            shots = video.search(query, index_type="scene", search_type=search_type).shots
        except videodb.exceptions.InvalidRequestError as exc:
            wrong.append((query, str(exc)))
            continue
        if abs(shots[0].start - i * SECONDS) > 1.0 or shots[0].scene_index_id != index_id:
            wrong.append((query, shots[0].start))
    assert len(wrong) <= len(queries) * 0.1, wrong


def test_a_scene_hit_plays_its_scene(video, index_id):
    (shot,) = video.search("certificate expired", index_type="scene", search_type="keyword").shots
    assert (shot.start, shot.scene_index_id) == (len(TOPICS) * SECONDS, index_id)
    start, end, _ = play(shot.stream_url)
    assert abs(start - shot.start) < 0.2 and abs(end - shot.end) < 0.3


def test_the_default_search_reads_screen_text_and_says_which_index_matched(srv, video, index_id):
    answer = requests.post(f"{srv.url}/video/{video.id}/search/v2", headers={"x-access-token": srv.api_key},
                           json={"query": "Batteries lasted eight minutes"}, timeout=60).json()
    doc = answer["data"]["results"][0]["docs"][0]
    assert doc["index_type"] == "scene" and doc["scene_index_id"] == index_id
    assert abs(doc["start"] - 3 * SECONDS) <= 1.0
    response = video.search("Generator failed to start")  # the SDK's v2 search
    assert abs(response.shots[0].start - 3 * SECONDS) <= 1.0


def test_given_scenes_are_indexed_as_given(video):
    from videodb.scene import Scene

    given = video.index_scenes(scenes=[Scene(video.id, 0, 3, "a lighthouse keeper's logbook")], name="mine")
    assert video.get_scene_index(given) == [{"start": 0.0, "end": 3.0, "description": "a lighthouse keeper's logbook"}]
    (shot,) = video.search("lighthouse", index_type="scene", search_type="keyword", scene_index_id=given).shots
    assert shot.scene_index_id == given
    video.delete_scene_index(given)
    assert given not in [i["scene_index_id"] for i in video.list_scene_index()]
    with pytest.raises(videodb.exceptions.InvalidRequestError):
        video.get_scene_index(given)


def test_an_index_request_while_one_runs_is_answered_by_the_running_one(srv, video):
    """The same reading asked twice at once is one index; scenes given as text are an index of their own."""
    from videodb.scene import Scene

    def ask(given: bool) -> str:
        mine = videodb.connect(api_key=srv.api_key, base_url=srv.url).get_collection().get_video(video.id)
        if given:
            return mine.index_scenes(scenes=[Scene(video.id, 0, 1, "a note of my own")], name="given")
        return mine.index_scenes(name="twice")

    with ThreadPoolExecutor(3) as pool:
        twice = list(pool.map(ask, [False, False, True]))
    assert twice[0] == twice[1] != twice[2], twice
    names = [i["name"] for i in video.list_scene_index()]
    assert names.count("twice") == 1 and names.count("given") == 1, names


def test_hostile_input(srv, video, tmp_path):
    conn = videodb.connect(api_key=srv.api_key, base_url=srv.url)
    audio_only = conn.get_collection().upload(file_path=str(make_audio(tmp_path / "t.wav", 1.0)), media_type="audio")
    key = {"x-access-token": srv.api_key}
    for path in ("scenes", "index/scene"):
        refused = requests.post(f"{srv.url}/video/{audio_only.id}/{path}", headers=key, json={}, timeout=30)
        assert refused.status_code == 404  # an audio is not a video
    bad = requests.post(f"{srv.url}/video/{video.id}/scenes", headers=key,
                        json={"extraction_type": "time", "extraction_config": {"time": -1}}, timeout=30)
    assert bad.status_code == 400 and "time > 0" in bad.json()["message"]
    unindexed = conn.get_collection().upload(file_path=str(make_silent_video(tmp_path)))
    with pytest.raises(videodb.exceptions.InvalidRequestError, match=r"index_scenes\(\)"):
        unindexed.search("x", index_type="scene")


def make_silent_video(tmp_path: Path) -> Path:
    """A video of one blank screen (no text on it)."""
    path = tmp_path / "blank.mp4"
    record(path, [(1.0, terminal((320, 240), [""]))], (320, 240))
    return path


def test_a_video_without_a_video_stream_never_reaches_a_scene_job(srv, tmp_path):
    """An .mp4 with only sound is refused as a video when uploaded (400 naming it), so no scene job
    meets it; the stage refuses such a file by name too (tests/index/test_screen_text.py)."""
    conn = videodb.connect(api_key=srv.api_key, base_url=srv.url)
    sound = make_audio(tmp_path / "sound.wav", 1.0)
    mp4 = tmp_path / "sound.mp4"
    with av.open(str(sound)) as src, av.open(str(mp4), "w") as out:
        stream = out.add_stream("aac", rate=48000)
        for frame in src.decode(audio=0):
            frame.pts = None
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    with pytest.raises(videodb.exceptions.InvalidRequestError, match="the file is audio"):
        conn.get_collection().upload(file_path=str(mp4), media_type="video")


def test_a_blank_screen_indexes_with_no_description_and_no_error(srv, tmp_path):
    conn = videodb.connect(api_key=srv.api_key, base_url=srv.url)
    blank = conn.get_collection().upload(file_path=str(make_silent_video(tmp_path)))
    index = blank.index_scenes()
    assert [r["description"] for r in blank.get_scene_index(index)] == [""]


def test_a_language_without_data_is_refused(in_process_factory, deck):
    server = in_process_factory("langs", ocr_langs="eng+xyz", sync_wait="10")
    conn = videodb.connect(api_key=server.api_key, base_url=server.url)
    video = conn.get_collection().upload(file_path=str(deck))
    with pytest.raises(videodb.exceptions.InvalidRequestError, match="xyz") as refused:
        video.index_scenes()
    assert refused.value.response.status_code == 400


def test_scene_search_picks_random_words_shown(video, index_id):
    """Words picked at random from the slides, searched by keyword: the right scene first."""
    rng = random.Random(5)
    for _ in range(5):
        i = rng.randrange(len(TOPICS))
        word = rng.choice([w for w in " ".join(TOPICS[i][1]).split() if len(w) > 4])
        shots = video.search(word, index_type="scene", search_type="keyword").shots
        assert abs(shots[0].start - i * SECONDS) <= 1.0, (word, shots[0].start)


def test_the_players_search_marks_screen_text_hits(srv, video, index_id):
    """The player's search (beside the stream, its own link as credential) finds screen text too,
    each such hit marked ``index_type: scene`` (the page labels it "On screen")."""
    folder = video.stream_url.rsplit("/", 1)[0]
    hits = requests.get(f"{folder}/search", params={"q": "Schedule welcome call"}, timeout=60).json()["results"]
    assert hits[0]["index_type"] == "scene" and abs(hits[0]["start"] - 4 * SECONDS) <= 1.0


def test_the_players_text_on_screen_lists_the_scenes_with_their_pictures(srv, video, index_id):
    """Beside the stream: ``scenes.json`` (the latest scene index, scene by scene) and each scene's
    picture, ``scene-<n>.jpg``; the watch page lists them under "Text on screen"."""
    folder = video.stream_url.rsplit("/", 1)[0]
    listed = requests.get(f"{folder}/scenes.json", timeout=60).json()["scenes"]
    latest = video.get_scene_index(video.list_scene_index()[-1]["scene_index_id"])
    assert [s["text"] for s in listed] == [r["description"] for r in latest]
    picture = requests.get(f"{folder}/scene-0.jpg", timeout=60)
    assert picture.status_code == 200 and picture.content[:2] == b"\xff\xd8"
    assert requests.get(f"{folder}/scene-99999.jpg", timeout=60).status_code == 404
    page = requests.get(f"{srv.url}/player/static/watch.html", timeout=30).text
    assert 'id="screen-heading"' in page and "Text on screen" in page
