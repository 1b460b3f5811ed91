"""seqdeps replaces one litestar method; a release that changes it must be noticed here, not in
production as a silent fallback (the server would only get slower)."""

from litestar import Litestar, get
from litestar.di import Provide
from litestar.testing import TestClient


def test_in_order_resolution_installs_on_this_litestar_and_resolves_the_same_kwargs():
    from litestar._kwargs.kwargs_model import KwargsModel

    from reeldb.server.seqdeps import _in_order, resolve_dependencies_in_order

    assert resolve_dependencies_in_order() is True
    assert KwargsModel.resolve_dependencies is _in_order

    order: list[str] = []

    def make(name: str):
        async def provide() -> str:
            order.append(name)
            return name
        return provide

    async def both(a: str, b: str) -> str:  # a dependency of dependencies: a second batch
        return a + b

    @get("/", sync_to_thread=False)
    def handler(a: str, b: str, ab: str) -> dict:
        return {"a": a, "b": b, "ab": ab}

    app = Litestar([handler], dependencies={"a": Provide(make("a")), "b": Provide(make("b")), "ab": Provide(both)})
    with TestClient(app) as client:
        assert client.get("/").json() == {"a": "a", "b": "b", "ab": "ab"}
    assert sorted(order) == ["a", "b"]
