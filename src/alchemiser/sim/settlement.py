"""What happens to the account without trading: the day's regulatory fees at each close,
dividends and splits at their ex-date's open. Each is posted once, as an activity."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from alchemiser.sim.activities import new_york_date
from alchemiser.sim.market import CorporateAction

if TYPE_CHECKING:
    from alchemiser.sim.broker import Broker


class Settlement:
    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        # Corporate actions not yet applied to the account, and the next session whose
        # close will post the day's fees.
        self.pending_actions: list[tuple[str, CorporateAction]] = []
        self.next_close_index = broker.market.session_index(broker.clock.epoch())

    def end_of_days(self, now: float) -> None:
        """Post the fees of every session that has closed since the last tick."""
        broker, market = self.broker, self.broker.market
        index = self.next_close_index
        while index < market.size and market.session_bounds(index)[1] <= now:
            close = market.session_bounds(index)[1]
            broker.cash -= broker.activities.post_fees(new_york_date(close), close)
            index += 1
        self.next_close_index = min(index, market.session_index(now))

    def add_action(self, symbol: str, action: CorporateAction) -> None:
        self.pending_actions.append((symbol, action))
        self.apply_due_actions(self.broker.clock.epoch())

    def apply_due_actions(self, now: float) -> None:
        """Splits and dividends whose ex-date has opened change the account (once each)."""
        due = [(s, a) for s, a in self.pending_actions if self._ex_open(a) <= now]
        if not due:
            return
        self.pending_actions = [p for p in self.pending_actions if p not in due]
        for symbol, action in sorted(due, key=lambda p: (p[1].index, p[0])):
            self._apply(symbol, action, max(now, self._ex_open(action)))

    def _ex_open(self, action: CorporateAction) -> float:
        return self.broker.market.session_bounds(self._clamped(action.index))[0]

    def _clamped(self, index: int) -> int:
        return min(max(index, 0), self.broker.market.size - 1)

    def _apply(self, symbol: str, action: CorporateAction, now: float) -> None:
        """The dividend is paid on the shares held before the split (both on one ex-date)."""
        broker, market = self.broker, self.broker.market
        held = broker.positions.get(symbol)
        if held is None:
            return
        day = market.calendar.days[self._clamped(action.index) + market.base]
        if action.dividend:
            per_share = Decimal(str(action.dividend))
            broker.cash += broker.activities.dividend(symbol, day, held.qty, per_share, now)
        if action.split_ratio != 1.0:
            ratio = Decimal(str(action.split_ratio))
            old = held.qty
            held.qty *= ratio
            held.avg_entry_price /= ratio
            broker.activities.split(symbol, day, held.qty - old, ratio, now)
