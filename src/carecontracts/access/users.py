"""The service's users: each acts for one party in one role, signs in to pages with a password
(argon2) and calls the API with a bearer token (kept as its SHA-256). Every change is an event."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.orm import Session

from carecontracts.access.parties import ROLES, SEES_EVERYTHING, Book, Viewer
from carecontracts.problems import Problem, ProblemsError
from carecontracts.records.schema import Token, User
from carecontracts.records.store import Records, actor, now, record_event

MIN_PASSWORD = 12
LOCK_AFTER = 5  # failed sign-ins in a row
LOCK_FOR = dt.timedelta(minutes=15)
TOKEN_PREFIX = "cc_"
# Which parts in the book each role may act in: a provider user's party must be paid under some contract.
ROLE_PARTS = {
    "commissioner": {"commissioner"},
    "provider": {"provider", "prime", "sub-contractor"},
    "alliance member": {"alliance member"},
}
_hasher = PasswordHasher()


def token_hash(token: str) -> str:
    """How a token is kept: tokens are long and random, so SHA-256 is enough and fast per request."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise ProblemsError([Problem("password", f"too short: {len(password)} characters", expected=f"at least {MIN_PASSWORD} characters")])


def _user(session: Session, name: str) -> User:
    user = session.scalar(sa.select(User).where(User.name == name))
    if user is None:
        known = session.scalars(sa.select(User.name).order_by(User.name)).all()
        raise ProblemsError([Problem("NAME", f"no user {name!r}", value=name,
                                     expected="one of " + ", ".join(known) if known else "a user added with `carecontracts users add`")])
    return user


def check_role(book: Book, party: str | None, role: str) -> str | None:
    """The party, checked against the role and the contracts: an auditor or admin need not
    act for a party; any other role must name a party whose part in the book fits it."""
    if role not in ROLES:
        raise ProblemsError([Problem("--role", f"unknown role {role!r}", value=role, expected="one of " + ", ".join(ROLES))])
    if role in SEES_EVERYTHING and not party:
        return None
    if not party:
        raise ProblemsError([Problem("--party", f"a {role} user acts for a party", expected="--party, e.g. a provider's id from its contracts")])
    parts = book.party_roles(party)
    if role in SEES_EVERYTHING:
        return party
    if not parts:
        known = sorted({r.party for r in book.relations})
        raise ProblemsError([Problem("--party", f"{party!r} is not party to any contract in contracts/", value=party,
                                     expected="one of " + ", ".join(known))])
    if not parts & ROLE_PARTS[role]:
        raise ProblemsError([Problem("--role", f"{party} is {', '.join(sorted(parts))} in the contracts, not {role}", value=role,
                                     expected=" or ".join(sorted({r for r, fits in ROLE_PARTS.items() if parts & fits})))])
    return party


@dataclass(frozen=True)
class Added:
    user: User
    token: str


def add_user(records: Records, book: Book, name: str, party: str | None, role: str, password: str | None = None,
             who: str | None = None) -> Added:
    """Create a user for a party in a role, with a first API token (returned, shown once)."""
    party = check_role(book, party, role)
    who = who or actor()
    if not name.strip() or len(name) > 100:
        raise ProblemsError([Problem("NAME", "a user's name must be 1 to 100 characters", value=name)])
    if password is not None:
        _check_password(password)
    with records.session() as session:
        if session.scalar(sa.select(User.id).where(User.name == name)) is not None:
            raise ProblemsError([Problem("NAME", f"a user {name!r} already exists", value=name, expected="a new name, or `users token` for a new token")])
        user = User(name=name, party=party, role=role, password_hash=_hasher.hash(password) if password else None,
                    failed_sign_ins=0, created_at=now(), created_by=who)
        session.add(user)
        session.flush()
        token = _issue(session, user, who)
        record_event(session, "user.add", name, {"party": party, "role": role, "password": password is not None}, who=who)
    return Added(user, token)


def _issue(session: Session, user: User, who: str | None) -> str:
    token = _new_token()
    session.add(Token(user_id=user.id, token_hash=token_hash(token), issued_at=now(), issued_by=who or actor()))
    return token


def issue_token(records: Records, name: str, who: str | None = None) -> str:
    """A new API token for a user; earlier tokens stay valid until revoked."""
    with records.session() as session:
        user = _user(session, name)
        token = _issue(session, user, who)
        record_event(session, "user.token", name, {"issued": True}, who=who)
    return token


def revoke(records: Records, name: str, who: str | None = None) -> int:
    """Revoke every live token of a user and end its page sessions; returns how many tokens."""
    with records.session() as session:
        user = _user(session, name)
        live = session.scalars(sa.select(Token).where(Token.user_id == user.id, Token.revoked_at.is_(None))).all()
        for token in live:
            token.revoked_at, token.revoked_by = now(), who or actor()
        user.sessions_from = now()
        record_event(session, "user.revoke", name, {"tokens": len(live)}, who=who)
    return len(live)


def set_password(records: Records, name: str, password: str, who: str | None = None) -> None:
    """Set a user's password (and lift any lockout)."""
    _check_password(password)
    with records.session() as session:
        user = _user(session, name)
        user.password_hash, user.failed_sign_ins, user.locked_until = _hasher.hash(password), 0, None
        record_event(session, "user.password", name, {"set": True}, who=who)


def users(records: Records) -> list[tuple[User, int]]:
    """Every user with its count of live tokens."""
    with records.session() as session:
        live = dict(session.execute(sa.select(Token.user_id, sa.func.count()).where(Token.revoked_at.is_(None)).group_by(Token.user_id)).all())
        return [(u, live.get(u.id, 0)) for u in session.scalars(sa.select(User).order_by(User.name))]


def viewer_of(user: User) -> Viewer:
    return Viewer(user=user.name, party=user.party, role=user.role)


def by_token(records: Records, token: str) -> Viewer | None:
    """The user a bearer token belongs to, if the token is live."""
    with records.session() as session:
        user = session.scalar(sa.select(User).join(Token, Token.user_id == User.id)
                              .where(Token.token_hash == token_hash(token), Token.revoked_at.is_(None)))
        return None if user is None else viewer_of(user)


def by_name(records: Records, name: str, signed_in_at: dt.datetime | None = None) -> Viewer | None:
    """The user of a page session begun at `signed_in_at`, if it exists and the session was not
    ended since (`users revoke` ends them)."""
    with records.session() as session:
        user = session.scalar(sa.select(User).where(User.name == name))
        if user is None or (user.sessions_from is not None and (signed_in_at is None or signed_in_at < user.sessions_from)):
            return None
        return viewer_of(user)


class SignInRefused(Exception):
    """A sign-in that did not succeed; the message is safe to show (it never says which part was wrong)."""


def sign_in(records: Records, name: str, password: str, at: dt.datetime | None = None) -> Viewer:
    """Check a password; after LOCK_AFTER failures in a row the user is locked for LOCK_FOR.
    Each success, failure and lock is an event, kept even though the sign-in is refused."""
    at = at or now()
    refusal: str | None = None
    with records.session() as session:
        user = session.scalar(sa.select(User).where(User.name == name))
        if user is None:
            _verified(None, password)  # as slow as a real check, so that names cannot be probed by timing
            record_event(session, "sign-in.failed", name, {"why": "no such user"}, who=name)
            refusal = "The user name or password is not right."
        elif user.locked_until is not None and user.locked_until > at:
            record_event(session, "sign-in.failed", name, {"why": "locked"}, who=name)
            refusal = f"Too many failed sign-ins: try again after {user.locked_until:%H:%M} UTC, or ask an admin."
        elif not _verified(user, password):
            user.failed_sign_ins += 1
            locked = user.failed_sign_ins >= LOCK_AFTER
            if locked:
                user.locked_until, user.failed_sign_ins = at + LOCK_FOR, 0
            record_event(session, "sign-in.locked" if locked else "sign-in.failed", name, {"why": "password"}, who=name)
            refusal = ("Too many failed sign-ins: the user is locked for 15 minutes." if locked
                       else "The user name or password is not right.")
        else:
            user.failed_sign_ins, user.locked_until = 0, None
            record_event(session, "sign-in", name, {"party": user.party, "role": user.role}, who=name)
            viewer = viewer_of(user)
    if refusal is not None:
        raise SignInRefused(refusal)
    return viewer


def _verified(user: User | None, password: str) -> bool:
    """Whether the password is the user's; with no user (or none set), checked against a stand-in
    hash all the same and refused, so every refusal costs one argon2 check."""
    stored = user.password_hash if user is not None else None
    try:
        return _hasher.verify(stored or _STAND_IN, password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


_STAND_IN = _hasher.hash("no user has this password")
