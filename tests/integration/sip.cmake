tally_pytest(sip_baresip sip_baresip.py 180)
