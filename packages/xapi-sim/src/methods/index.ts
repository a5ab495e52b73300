// Registers every explicit method (side effects of the imports).
import './session.js'
import './system.js'
import './task.js'
import './event.js'
