"""The Merkle tree is RFC 6962's: the Certificate Transparency test vectors, and proofs that fail when they should."""

from __future__ import annotations

import pytest

from dataroom.audit.merkle import (
    EMPTY_ROOT,
    Frontier,
    Tree,
    consistency_path,
    leaf_hash,
    root_of,
    verify_consistency,
    verify_inclusion,
)

# RFC 6962 test data as used by Certificate Transparency (transparency-dev/merkle testonly).
DATA = [bytes.fromhex(h) for h in ["", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"]]
LEAVES = [leaf_hash(d) for d in DATA]
ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
INCLUSION = [
    (0, 1, []),
    (0, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7", "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e", "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (5, 8, ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b", "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0", "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (1, 5, ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d", "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e", "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
]
CONSISTENCY = [
    (1, 1, []),
    (1, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7", "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e", "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (6, 8, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a", "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0", "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 5, ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e", "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
    (2, 8, ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e", "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
]


def test_roots_match_the_reference_tree_heads() -> None:
    assert EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert root_of([]) == EMPTY_ROOT
    for n in range(1, 9):
        assert root_of(LEAVES[:n]).hex() == ROOTS[n - 1]
        assert Tree(LEAVES[:n]).root().hex() == ROOTS[n - 1]


def test_frontier_is_the_tree_head_after_every_append() -> None:
    frontier = Frontier()
    for n, leaf in enumerate(LEAVES, start=1):
        frontier.push(leaf)
        assert frontier.root().hex() == ROOTS[n - 1]
        assert Frontier(frontier.size, frontier.nodes).root() == frontier.root()  # what a checkpoint carries resumes it


@pytest.mark.parametrize(("index", "size", "path"), INCLUSION)
def test_inclusion_proofs_match_the_reference(index: int, size: int, path: list[str]) -> None:
    proof = Tree(LEAVES[:size]).inclusion_path(index)
    assert [p.hex() for p in proof] == path
    assert verify_inclusion(index, size, LEAVES[index], proof, bytes.fromhex(ROOTS[size - 1]))


@pytest.mark.parametrize(("old", "new", "path"), CONSISTENCY)
def test_consistency_proofs_match_the_reference(old: int, new: int, path: list[str]) -> None:
    proof = consistency_path(LEAVES[:new], old)
    assert [p.hex() for p in proof] == path
    assert verify_consistency(old, new, bytes.fromhex(ROOTS[old - 1]), bytes.fromhex(ROOTS[new - 1]), proof)


def test_every_proof_of_larger_trees_verifies_and_mutations_do_not() -> None:
    leaves = [leaf_hash(i.to_bytes(2, "big")) for i in range(37)]
    for n in range(1, len(leaves) + 1):
        tree = Tree(leaves[:n])
        root = tree.root()
        assert root == root_of(leaves[:n])
        for i in range(n):
            path = tree.inclusion_path(i)
            assert verify_inclusion(i, n, leaves[i], path, root)
            assert not verify_inclusion(i, n, leaf_hash(b"other"), path, root)
            if n > 1:
                assert not verify_inclusion((i + 1) % n, n, leaves[i], path, root)
                assert not verify_inclusion(i, n, leaves[i], path[:-1], root)
        for m in range(1, n + 1):
            proof = consistency_path(leaves[:n], m)
            assert verify_consistency(m, n, root_of(leaves[:m]), root, proof)
            if m < n:
                assert not verify_consistency(m, n, root_of(leaves[1 : m + 1]), root, proof)
                assert not verify_consistency(m, n, root_of(leaves[:m]), root_of(leaves[: n - 1]), proof)
