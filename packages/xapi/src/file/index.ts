export { FileWriter } from './file-writer.js'
export type { FileWriterOptions, FileWritten } from './file-writer.js'
export { writeToFile } from './write-to-file.js'
export type { WriteToFileOptions } from './write-to-file.js'
