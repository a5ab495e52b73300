export { DiskHasher, XVA_BLOCK_SIZE, isZeroBlock, zeroBlockDigest } from './disk-hash.js'
