"""RFC 6962 (Certificate Transparency) Merkle tree hashing, inclusion and consistency proofs.

Kept small and dependency-free so that an auditor's verifier needs nothing but this file: a leaf is
``SHA-256(0x00 || data)``, an interior node ``SHA-256(0x01 || left || right)``, the empty tree
``SHA-256("")``, and a tree of ``n`` leaves splits at the largest power of two below ``n``
(RFC 6962 §2.1; the same in RFC 9162). Tested against the Certificate Transparency test vectors.

:class:`Frontier` keeps only the O(log n) roots of the perfect subtrees of a growing tree, so the
writer can sign a root after every append without holding the leaves.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


class Frontier:
    """The roots of the perfect subtrees a tree of ``size`` leaves decomposes into, largest first."""

    __slots__ = ("size", "nodes")

    def __init__(self, size: int = 0, nodes: Sequence[bytes] = ()) -> None:
        if len(nodes) != bin(size).count("1"):
            raise ValueError(f"a frontier of {size} leaves has {bin(size).count('1')} nodes, not {len(nodes)}")
        self.size = size
        self.nodes = list(nodes)

    def push(self, leaf: bytes) -> None:
        """Append one leaf hash: merge equal-sized subtrees like a binary counter."""
        node, size = leaf, self.size
        while size & 1:
            node = node_hash(self.nodes.pop(), node)
            size >>= 1
        self.nodes.append(node)
        self.size += 1

    def root(self) -> bytes:
        """The RFC 6962 tree head: the subtrees folded right to left."""
        if not self.nodes:
            return EMPTY_ROOT
        root = self.nodes[-1]
        for node in reversed(self.nodes[:-1]):
            root = node_hash(node, root)
        return root

    def copy(self) -> "Frontier":
        return Frontier(self.size, self.nodes)


def root_of(leaves: Sequence[bytes]) -> bytes:
    """Tree head over the leaf hashes ``leaves``."""
    frontier = Frontier()
    for leaf in leaves:
        frontier.push(leaf)
    return frontier.root()


def _levels(leaves: Sequence[bytes]) -> list[list[bytes]]:
    """Every level of the tree, leaves first; an unpaired last node moves up unchanged (== RFC 6962's split)."""
    levels = [list(leaves)]
    while len(levels[-1]) > 1:
        below = levels[-1]
        above = [node_hash(below[i], below[i + 1]) for i in range(0, len(below) - 1, 2)]
        if len(below) % 2:
            above.append(below[-1])
        levels.append(above)
    return levels


class Tree:
    """All levels over a fixed list of leaf hashes: many inclusion proofs for the price of one pass."""

    def __init__(self, leaves: Sequence[bytes]) -> None:
        self.size = len(leaves)
        self._levels = _levels(leaves) if leaves else [[]]

    def root(self) -> bytes:
        return self._levels[-1][0] if self.size else EMPTY_ROOT

    def inclusion_path(self, index: int) -> list[bytes]:
        """RFC 6962 §2.1.1 PATH(index, D[size]), bottom up."""
        if not 0 <= index < self.size:
            raise ValueError(f"leaf {index} is not in a tree of {self.size}")
        path = []
        for level in self._levels[:-1]:
            sibling = index ^ 1
            if sibling < len(level):
                path.append(level[sibling])
            index >>= 1
        return path


def inclusion_path(leaves: Sequence[bytes], index: int) -> list[bytes]:
    return Tree(leaves).inclusion_path(index)


def root_from_inclusion(index: int, size: int, leaf: bytes, path: Sequence[bytes]) -> bytes:
    """The root a proof leads to (RFC 9162 §2.1.3.2); ``ValueError`` when the proof cannot be one."""
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of {size}")
    fn, sn, node = index, size - 1, leaf
    for sibling in path:
        if sn == 0:
            raise ValueError("the proof is longer than the tree is high")
        if fn & 1 or fn == sn:
            node = node_hash(sibling, node)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            node = node_hash(node, sibling)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ValueError("the proof is shorter than the tree is high")
    return node


def verify_inclusion(index: int, size: int, leaf: bytes, path: Sequence[bytes], root: bytes) -> bool:
    try:
        return root_from_inclusion(index, size, leaf, path) == root
    except ValueError:
        return False


def _subtree_root(leaves: Sequence[bytes], start: int, end: int) -> bytes:
    return root_of(leaves[start:end])


def consistency_path(leaves: Sequence[bytes], old_size: int) -> list[bytes]:
    """RFC 6962 §2.1.2 PROOF(m, D[n]): the old tree head is a prefix of the new one."""
    size = len(leaves)
    if not 0 < old_size <= size:
        raise ValueError(f"no consistency proof from {old_size} to {size}")

    def subproof(m: int, start: int, end: int, complete: bool) -> list[bytes]:
        n = end - start
        if m == n:
            return [] if complete else [_subtree_root(leaves, start, end)]
        k = 1 << ((n - 1).bit_length() - 1)
        if m <= k:
            return subproof(m, start, start + k, complete) + [_subtree_root(leaves, start + k, end)]
        return subproof(m - k, start + k, end, False) + [_subtree_root(leaves, start, start + k)]

    return subproof(old_size, 0, size, True)


def verify_consistency(old_size: int, size: int, old_root: bytes, root: bytes, path: Sequence[bytes]) -> bool:
    """RFC 9162 §2.1.4.2: does the tree of ``size`` extend the one of ``old_size``?"""
    if not 0 < old_size <= size:
        return False
    if old_size == size:
        return not path and old_root == root
    if not path:
        return False
    proof = list(path)
    if old_size & (old_size - 1) == 0:  # a power of two: the old root is the first node
        proof.insert(0, old_root)
    fn, sn = old_size - 1, size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = proof[0]
    for c in proof[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == old_root and sr == root
