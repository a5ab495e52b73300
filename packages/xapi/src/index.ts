export * from './xva/index.js'
