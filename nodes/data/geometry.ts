// What bucketing did to a sample, as kohya's sdxl_train records it for SDXL's size/crop conditioning:
// the image's original size, the crop's top-left and the target (bucket) size. The crop follows
// Stability's preprocessing as kohya computes it (get_crop_ltrb: the image fitted inside the bucket,
// centred), and a horizontal flip mirrors it (left = bucket width − crop right).
import type { SampleGeometry } from '../../kernels/families/contract';
import type { Bucket } from './buckets';
import type { Flips, ImageSize } from './images';

/** kohya's crop box [left, top, right, bottom] of an image of `size` in `bucket` (right/bottom unrounded). */
export function kohyaCropLtrb(bucket: Bucket, size: ImageSize): [number, number, number, number] {
  const bucketAspect = bucket.width / bucket.height;
  const imageAspect = size.width / size.height;
  // A bucket wider than the image fits the image's height, otherwise its width.
  const [w, h] = bucketAspect > imageAspect ? [bucket.height * imageAspect, bucket.height] : [bucket.width, bucket.width / imageAspect];
  const left = Math.floor((bucket.width - w) / 2);
  const top = Math.floor((bucket.height - h) / 2);
  return [left, top, left + w, top + h];
}

/** The micro-conditioning geometry of one drawn sample (integers, as kohya truncates them). */
export function sampleGeometry(item: { size: ImageSize; bucket: Bucket }, flips: Flips): SampleGeometry {
  const [left, top, right] = kohyaCropLtrb(item.bucket, item.size);
  const cropLeft = flips.flipX ? item.bucket.width - right : left;
  return {
    originalSize: { width: item.size.width, height: item.size.height },
    cropTopLeft: { top: Math.trunc(top), left: Math.trunc(cropLeft) },
    targetSize: { width: item.bucket.width, height: item.bucket.height },
  };
}
