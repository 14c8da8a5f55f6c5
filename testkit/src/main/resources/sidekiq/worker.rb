# The Ruby side of Sluice's Sidekiq bridge tests: ordinary Sidekiq workers, as a Rails app would have them.
# Each records the jid and args of every job it runs, one JSON line per job, in SLUICE_JID_LOG.
require 'sidekiq'
require 'json'

module JidLog
  def record(args)
    line = JSON.generate({ 'class' => self.class.name, 'jid' => jid, 'args' => args }) + "\n"
    File.open(ENV.fetch('SLUICE_JID_LOG'), 'a') do |f|
      f.flock(File::LOCK_EX)
      f.write(line)
    end
  end
end

class PushWorker
  include Sidekiq::Worker
  include JidLog

  def perform(*args)
    record(args)
  end
end

class VipPushWorker < PushWorker
end
