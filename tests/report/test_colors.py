"""charlm/report/colors.py: the surprisal colours, one even scale in true colour and in 256 colours."""

from __future__ import annotations

import numpy as np

from charlm.report import colors


def test_surprisal_colours_are_one_even_scale():
    """Lightness falls with every step of surprisal, by about as much per bit; in 256 colours, never rises."""
    from rich.color import Color, ColorSystem

    def term(c: str) -> str:
        return "#{:02x}{:02x}{:02x}".format(*Color.parse(c).downgrade(ColorSystem.EIGHT_BIT).get_truecolor())

    light = [colors.lightness(colors.surprisal_color(b)[0]) for b in np.linspace(0, 8, 33)]
    assert all(a > b for a, b in zip(light, light[1:], strict=False)), light
    per_bit = -np.diff(light[::4])
    assert per_bit.max() < 2 * per_bit.min(), per_bit
    in_256 = [colors.lightness(term(colors.surprisal_color(b)[0])) for b in np.linspace(0, 8, 33)]
    assert all(a >= b for a, b in zip(in_256, in_256[1:], strict=False)), in_256
