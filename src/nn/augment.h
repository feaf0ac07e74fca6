/*
 * augment.h - random affine augmentation of training images, in the manner
 * of Keras' ImageDataGenerator (width/height_shift_range, rotation_range,
 * zoom_range): each image of a batch is shifted, rotated and scaled about
 * its centre by amounts drawn from the caller's nn_rng, and resampled
 * bilinearly with zeros outside the image.
 *
 * Geometry (pixel centres at integer coordinates, x = column to the right,
 * y = row downwards, centre c = ((W-1)/2, (H-1)/2)): a point p of the input
 * goes to
 *     p' = R(angle) * s * (p - c) + c + (dx, dy)
 * where R(angle) turns the picture anticlockwise as it is seen on screen
 * (rows drawn downwards), s > 1 enlarges it, dx > 0 moves it right and
 * dy > 0 down. Each output pixel is
 * sampled at the inverse image of its centre.
 *
 * Not part of the public API yet (train.c uses it); internal to libnn.
 */
#ifndef NN_AUGMENT_H
#define NN_AUGMENT_H

#include <stdbool.h>
#include <stddef.h>

#include "nn.h"

/* The ranges come in nn_augment (nn.h): shift in pixels, rotate in
 * degrees, scale as a relative change (0.1: s in [0.9, 1.1]); all zero
 * means off. */

/* NN_OK if every range is finite, shift >= 0, 0 <= rotate <= 180 and
 * 0 <= scale < 1 (so s > 0); else NN_ERR_ARG with the offending field in
 * err. Call once before training (e.g. at the start of fit). */
nn_status nn_augment_check(const nn_augment *p, nn_error *err);

/* True when p is not NULL and some range is non-zero. */
bool nn_augment_enabled(const nn_augment *p);

/* Floats of scratch nn_augment_batch needs for B samples of `shape`:
 * B * (H*W*C + 4) for rank 3 (one slot per image, so the size does not
 * depend on the thread count); 0 for rank 1 or B <= 0. */
size_t nn_augment_scratch_floats(nn_shape shape, int B);

/* Augments the B samples of x (B, H, W, C) in place.
 * Serially, in image order, draws four numbers from rng per image:
 * dx, dy uniform in [-shift, shift], angle uniform in [-rotate, rotate]
 * degrees, s uniform in [1-scale, 1+scale] (all four are drawn even when
 * one range is 0, so the rng advances 4*B draws). Then transforms the
 * images, in parallel above a size threshold; the result depends on the
 * seed only, never on the thread count.
 * Does nothing (x unchanged, rng not advanced) when the shape is rank 1
 * (flat vectors: there is no image to transform), when B <= 0, when
 * augmentation is off (all ranges 0), or when p fails nn_augment_check.
 * scratch: at least nn_augment_scratch_floats(shape, B) floats, caller-
 * owned, contents on return unspecified; not read before it is written.
 * No allocation. */
void nn_augment_batch(float *x, int B, nn_shape shape,
                      const nn_augment *p, nn_rng *rng,
                      float *scratch);

/* Advances rng exactly as nn_augment_batch would for B images, without
 * transforming any (a data-parallel shard skipping the other shards'
 * images of a batch, so every shard draws what one process would). */
void nn_augment_skip(int B, nn_shape shape, const nn_augment *p,
                     nn_rng *rng);

/* The transform of one image with given parameters:
 * src (H, W, C) -> dst (H, W, C), HWC floats, which must not overlap.
 * dx, dy in pixels, angle_deg in degrees (anticlockwise on screen), s > 0
 * the scale (s <= 0 or non-finite parameters give an all-zero image).
 * With angle 0 and s 1, integer dx, dy move every pixel exactly by
 * (dx, dy); pixels that leave the image are lost, new ones are 0.
 * Every output value lies between the smallest and largest of its four
 * bilinear neighbours (0 standing for those outside), so the output stays
 * within [min(0, min src), max(0, max src)]. */
void nn_augment_one(const float *src, float *dst, int H, int W, int C,
                    float dx, float dy, float angle_deg, float s);

#endif
