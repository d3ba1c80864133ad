"""Tiles: the codec's transforms run region by region, so memory follows the tile, not the image.

The latent grid (the image padded to multiples of 64, over 16) is cut into square tiles of
`tile` latents (the last row and column of tiles may be smaller), taken in raster order. Each
transform runs on a tile grown by a halo of neighbouring samples and keeps the tile's part:

- analysis g_a (encoder): a halo of ANALYSIS_HALO latents (32 pixels). Four 5x5 convolutions of
  stride 2 reach 2 + 4 + 8 + 16 = 30 pixels, so every latent of the tile sees exactly the pixels
  it sees in the whole image: a tile's latents equal the whole image's up to float summation
  order.
- hyper-analysis h_a (encoder): HYPER_ANALYSIS_HALO latents; its 3x3 and two 5x5 stride-2
  convolutions reach 1 + 2 + 4 = 7 latents.
- entropy parameters (integer h_s, and a context model's networks): `entropy_halo` hyper-latent
  cells. The hyper-synthesis reaches less than 2 cells (7 latents), and it is integer-exact, so
  with a halo of 2 a tile's means and table indexes are bit for bit the whole image's.
- synthesis g_s: `synthesis_halo` latents. Four 5x5 transposed convolutions of stride 2 reach
  30 pixels (under 2 latents), so with a halo of 2 a tile's pixels equal the whole image's up to
  float summation order: tiling costs no rate and (almost) no quality.

Symbols are coded tile after tile (docs/bitstream.md, "Tiles"): a tile's coding steps read the
latents of the tiles before it and see zeros for those after it, on both sides. The decoder
must run the synthesis on the same tiles as every other decoder for the same pixels, so a tiled
stream records the tile size and both halos it decodes with; the analysis halos are the
encoder's choice and are not recorded. An image whose latent fits one tile is not tiled: its
stream is the untiled one, byte for byte.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

TILE = 64
"""Default tile side in latents: 1024 pixels, about a million pixels per tile (JPEG AI's
reference software also codes tiles of about a million samples)."""
MIN_TILE, MAX_TILE = 16, 1024
"""Tile sides a stream may name, in latents (256 to 16384 pixels), multiples of Z_CELL."""
ANALYSIS_HALO = 2
"""Latents (32 pixels) around a tile for g_a: beyond its 30-pixel reach."""
HYPER_ANALYSIS_HALO = 8
"""Latents (2 hyper-latent cells) around a tile for h_a: beyond its 7-latent reach."""
SYNTHESIS_HALO = 2
"""Latents around a tile for g_s: beyond its 30-pixel (1.9-latent) reach."""
ENTROPY_HALO = 2
"""Hyper-latent cells around a tile for the entropy parameters: beyond h_s's 7-latent reach."""
MAX_SYNTHESIS_HALO, MAX_ENTROPY_HALO = 8, 4
"""The largest halos a stream may name (more would only cost time)."""
LATENT_STRIDE = 16
"""Pixels per latent."""
Z_CELL = 4
"""Latents per hyper-latent cell."""


@dataclass(frozen=True)
class Region:
    """Rows top..bottom - 1 and columns left..right - 1 of a grid."""

    top: int
    left: int
    bottom: int
    right: int

    @property
    def height(self) -> int:
        return self.bottom - self.top

    @property
    def width(self) -> int:
        return self.right - self.left

    def grown(self, halo: int, height: int, width: int) -> Region:
        """This region and `halo` more on every side, inside a height x width grid."""
        return Region(
            max(self.top - halo, 0),
            max(self.left - halo, 0),
            min(self.bottom + halo, height),
            min(self.right + halo, width),
        )

    def scaled(self, factor: int) -> Region:
        return Region(*(factor * v for v in (self.top, self.left, self.bottom, self.right)))

    def divided(self, factor: int) -> Region:
        """The region on a grid `factor` times coarser (the region is aligned to it)."""
        return Region(*(v // factor for v in (self.top, self.left, self.bottom, self.right)))

    def within(self, outer: Region) -> Region:
        """This region in the coordinates of `outer` (which contains it)."""
        return Region(
            self.top - outer.top,
            self.left - outer.left,
            self.bottom - outer.top,
            self.right - outer.left,
        )

    def of(self, array: torch.Tensor | np.ndarray) -> torch.Tensor | np.ndarray:
        """The region of the last two axes of `array` (a view)."""
        return array[..., self.top : self.bottom, self.left : self.right]


@dataclass(frozen=True)
class Tiling:
    """How a stream's latent was cut: the tile side in latents and the decoder's halos."""

    tile: int = TILE
    synthesis_halo: int = SYNTHESIS_HALO
    entropy_halo: int = ENTROPY_HALO

    def __post_init__(self) -> None:
        if not (MIN_TILE <= self.tile <= MAX_TILE and self.tile % Z_CELL == 0):
            raise ValueError(
                f"tile of {self.tile} latents: a multiple of {Z_CELL} in {MIN_TILE}..{MAX_TILE}"
            )
        if not 0 <= self.synthesis_halo <= MAX_SYNTHESIS_HALO:
            raise ValueError(
                f"synthesis halo {self.synthesis_halo} outside 0..{MAX_SYNTHESIS_HALO}"
            )
        if not 0 <= self.entropy_halo <= MAX_ENTROPY_HALO:
            raise ValueError(f"entropy halo {self.entropy_halo} outside 0..{MAX_ENTROPY_HALO}")

    def regions(self, height: int, width: int) -> list[Region]:
        """The tiles of a height x width latent grid, in coding (raster) order."""
        return [
            Region(top, left, min(top + self.tile, height), min(left + self.tile, width))
            for top in range(0, height, self.tile)
            for left in range(0, width, self.tile)
        ]

    def fits_one_tile(self, height: int, width: int) -> bool:
        return height <= self.tile and width <= self.tile

    def describe(self) -> dict[str, int]:
        return {
            "tile": self.tile,
            "synthesis_halo": self.synthesis_halo,
            "entropy_halo": self.entropy_halo,
        }


def latent_size(width: int, height: int) -> tuple[int, int]:
    """(H, W) latents of a width x height image: padded to multiples of 64, over 16."""
    cell = LATENT_STRIDE * Z_CELL
    return Z_CELL * -(-height // cell), Z_CELL * -(-width // cell)


def tiling_for(height: int, width: int, tile: int = TILE) -> Tiling | None:
    """The tiling of a height x width latent grid coded with tiles of `tile` latents: None when
    it fits one tile (the untiled stream)."""
    tiling = Tiling(tile)
    return None if tiling.fits_one_tile(height, width) else tiling


def pixel_window(image: np.ndarray, region: Region) -> torch.Tensor:
    """float32 (1, 3, 16 h, 16 w) in [0, 1]: a latent region's pixels of uint8 (H, W, 3), the
    image extended by edge replication to multiples of 64 (the same values as the whole padded
    image's, nic.codec.padded_tensor)."""
    pixels = region.scaled(LATENT_STRIDE)
    height, width = image.shape[:2]
    rows = np.minimum(np.arange(pixels.top, pixels.bottom), height - 1)
    cols = np.minimum(np.arange(pixels.left, pixels.right), width - 1)
    window = image[rows[:, None], cols[None, :]]
    return torch.from_numpy(window).permute(2, 0, 1)[None].float() / 255.0
