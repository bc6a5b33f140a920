/**
 * The Node runtime's dataset loaders, supplied to the shared registry on
 * import: every Node process that loads data (coordinator, worker, tools)
 * imports this module rather than shared/data/registry.ts directly.
 */
import { supplyDatasetLoader } from '../../shared/data/registry.ts';
import { loadFashionMnist } from './fashion-mnist.ts';
import { describeImages, loadImages } from './images.ts';
import { loadMnistCached } from './mnist.ts';

supplyDatasetLoader('mnist', () => loadMnistCached());
supplyDatasetLoader('fashion-mnist', () => loadFashionMnist());
supplyDatasetLoader('images', loadImages, describeImages);

export { describeDataset, getDatasetSpec, isFolderDataset, listDatasets, loadDataset } from '../../shared/data/registry.ts';
