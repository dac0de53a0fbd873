output "jobs" {
  description = "Scheduler job name per scheduled function."
  value       = { for name, job in google_cloud_scheduler_job.job : name => job.name }
}
