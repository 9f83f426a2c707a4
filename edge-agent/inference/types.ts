// A model version loaded into memory and ready to answer predictions.
import type * as tf from '@tensorflow/tfjs';

/** A loaded model version with its signature. */
export interface ServedModel {
  name: string;
  version: number;
  /** Shape of one example, without the batch dimension. */
  inputShape: number[];
  /** Number of output classes. */
  classes: number;
  model: tf.LayersModel;
}

/** Result of `ModelServer.predict` for a batch of `n` examples. */
export interface Prediction {
  /** The version that answered. */
  version: number;
  /** `n * classes` class probabilities, row-major. */
  probabilities: Float32Array;
  /** `n` most likely classes. */
  classes: Int32Array;
}
