"""Asset jobs with run-config presets, schedules and sensors."""
